"""Neural recommenders (autoencoders); see the module's models below."""
