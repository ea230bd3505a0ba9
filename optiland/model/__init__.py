"""The model: the allowed (parcel, option, variant) set and its coefficients, the constraint families, and the
backends that build them (Pyomo reference, sparse matrices)."""
