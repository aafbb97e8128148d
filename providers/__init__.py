"""pygeoapi provider plugins, imported as ``geomayotte.providers``."""
