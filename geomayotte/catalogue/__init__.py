"""The catalogue: one record per dataset, feature type and service the platform serves.

- ``metadata``: the human metadata (``config/datasets.yml``), checked against what is served;
- ``store``: the record table in PostGIS (``catalogue.record``) and the triggers that mark a
  record stale when its data changes;
- ``sync``: records built from the metadata and from the data (extent, period, count);
- ``search``: a records query as SQL (q, bbox, datetime, type, ids, CQL2 ...);
- ``record``: a row as an OGC API Records record (GeoJSON);
- ``dcat``: the same catalogue as DCAT-AP (rdflib), served at ``/collections/catalogue/dcat``;
- ``harvest``: partners' catalogues (OGC API Records, CSW) harvested in with OWSLib;
- ``cli``: ``geomayotte-catalogue``.
"""
