"""Top-N lists: filters, diversity, reasons, the content model's new films and the blend."""
