"""The undo of a partly refused insert deletes by exact value, never by pattern (issue 11, point 5)."""

from __future__ import annotations

import contextlib

import pytest
from bson import Regex

from chalicelib.docdb.client import DocdbConnection, build_client
from chalicelib.docdb.service import CollectionService
from chalicelib.errors import ConflictError
from tests.support import FixedSecret


def test_undo_of_a_partial_insert_deletes_by_exact_value(stack, collection):
    coll = stack.mongo.blog[collection]
    coll.insert_many([{"_id": f"keep{i}"} for i in range(3)])
    connection = DocdbConnection(FixedSecret(stack.secantus.secret()), "undo", str(stack.secantus.ca_file), 1,
                                 factory=build_client)
    with contextlib.closing(connection):
        service = CollectionService(connection)
        with pytest.raises(ConflictError):
            # Past the route's validation on purpose: the undo itself must not match by pattern.
            service.insert("blog", collection, [{"_id": Regex("^keep")}, {"_id": "keep0"}])
    assert sorted(d["_id"] for d in coll.find({"_id": {"$type": "string"}})) == ["keep0", "keep1", "keep2"]
