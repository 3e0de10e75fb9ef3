"""The generated-text column: prompt and generated tokens tinted by probability."""
