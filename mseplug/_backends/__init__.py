"""Built-in backends. Each module is imported only when its library is in use."""
