"""TFDS builder for `rlif_adroit`."""
