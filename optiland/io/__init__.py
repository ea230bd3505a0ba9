"""Reading the inputs and their rules: the scenario file, the region catalog, the parcel layer and villages, PostGIS."""
