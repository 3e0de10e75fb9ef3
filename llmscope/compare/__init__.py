"""Compare: two lanes stepped together and the divergence between their distributions."""
