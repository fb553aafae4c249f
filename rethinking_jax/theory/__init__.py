"""The paper's theory, runnable: Theorem 1's construction and minimum-norm interpolation."""
