"""Pure statistics of labels (agreement, and quality against reference labels): plain Python and NumPy, no Django
and none of our packages, so that every layer may use them."""
