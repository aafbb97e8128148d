"""OGC API Features Part 4 (create, replace, update, delete) for partners with write rights.

- ``target``: which collections take writes (those a feature type of the reference model
  describes) and how the served property names map to the model's attributes;
- ``audit``: the ``audit.change`` history (who, when, before, after, the warnings);
- ``apply``: one write as one transaction: rows locked, If-Match checked, validation
  against the reference model, reprojection to the storage CRS by PostGIS, history;
- ``http``: the WSGI handler the middleware hands write requests to.
"""
