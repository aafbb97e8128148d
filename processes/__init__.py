"""pygeoapi process plugins, imported as ``geomayotte.processes``."""
