"""The retired Atlas Data API's contract (``POST /action/{action}``) on our collections.

formats: request bodies and the two response formats; actions: each action's
fields, checks and service call; views: authentication, grants and the error
shape around them; openapi: the description of the two routes.  Every check is
the REST routes' own code (chalicelib.docdb.query, chalicelib.auth).  The
contract as we read it is in docs/data-api.md.
"""
