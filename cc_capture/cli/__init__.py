"""`ccd`: a thin command-line skin over the cc_capture library."""
