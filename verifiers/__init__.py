"""Verifiers: math answer checking with sympy and code execution in a sandbox."""
