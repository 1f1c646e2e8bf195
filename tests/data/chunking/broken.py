def good(a, b):
    return a + b


def bad(x):
    return x +* ) 2


class Half:
    def method(self):
        return 1 1


def also_good():
    """Still found."""
    return 2
