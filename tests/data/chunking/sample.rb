require "json"

# Parses and stores settings.
# Loaded once at boot.
module Settings
  # One setting.
  class Entry
    attr_reader :key

    def initialize(key)
      @key = key
    end

    # Whether the key is secret.
    def secret?
      key.start_with?("secret_")
    end

    def self.parse(text)
      JSON.parse(text).map { |k, _| new(k) }
    end
  end

  class << self
    def load(path)
      Entry.parse(File.read(path))
    end
  end
end

def main
  Settings.load("settings.json")
end
