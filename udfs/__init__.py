"""Python UDFs for enrichment: plain logic plus thin PyFlink wrappers (none yet in the thin slice)."""
