//! Built-in authenticators and authorizers for Roost.
