"""Cutting source files into chunks (functions, methods, classes; line windows otherwise) with tree-sitter."""
