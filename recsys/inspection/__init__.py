"""Looking inside trained models: embedding maps, latent dimensions, graph neighbourhoods."""
