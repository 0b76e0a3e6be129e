"""Small numeric helpers: try `code-llama-ls complete examples/fibonacci.py:6:5`."""


def fibonacci(n: int) -> int:
    """Return the n-th Fibonacci number, with fibonacci(0) == 0."""
    

def is_prime(n: int) -> bool:
    """Return True when n is a prime number."""
    if n < 2:
        return False
    for divisor in range(2, int(n**0.5) + 1):
        if n % divisor == 0:
            return False
    return True
