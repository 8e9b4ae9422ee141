"""SFT and DPO datasets from qualifying traces, in Hugging Face chat formats (see `build`)."""
