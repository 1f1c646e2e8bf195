"""Number formatting and parsing."""


def parse_size(text):
    """Parse a human readable size such as 10KB or 3.5 MB into a number of bytes."""
    units = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}
    cleaned = text.strip().lower().replace(" ", "")
    for unit in sorted(units, key=len, reverse=True):
        if cleaned.endswith(unit):
            return int(float(cleaned[: -len(unit)]) * units[unit])
    return int(cleaned)


def format_duration(seconds):
    """Format a number of seconds as hours, minutes and seconds like 1h 02m 03s."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    return f"{minutes}m {secs:02d}s"


def moving_average(values, window):
    """Compute the moving average of a list of numbers over a fixed window."""
    averages = []
    total = 0.0
    for index, value in enumerate(values):
        total += value
        if index >= window:
            total -= values[index - window]
        averages.append(total / min(index + 1, window))
    return averages


def clamp(value, low, high):
    """Limit a value to the closed range between low and high."""
    if value < low:
        return low
    if value > high:
        return high
    return value


def __helper__(x):
    """A dunder-named helper that the miner must skip entirely."""
    y = x + 1
    z = y * 2
    return z
