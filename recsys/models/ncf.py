"""Neural recommenders (ncf); see the module's models below."""
