#include <string>

namespace CLI {
namespace detail {

/// Split a string on a delimiter.
std::vector<std::string> split(const std::string &s, char delim);

/// A validator checks one value.
class Validator {
  public:
    Validator() = default;
    explicit Validator(std::string name) : name_(std::move(name)) {}

    /// Run the check; empty when the value is fine.
    std::string operator()(std::string &str) const { return func_(str); }

    struct Result {
        bool ok;
    };

  private:
    std::string name_;
};

}  // namespace detail

template <typename T>
T Option::as() const {
    T output;
    return output;
}

std::string detail::Validator::describe() const { return name_; }

}  // namespace CLI

namespace a::b {
int twice(int x) { return 2 * x; }
}
