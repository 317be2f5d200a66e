"""How an authorizer refuses a request, on API Gateway and under chalice local.

API Gateway answers 401 only when a TOKEN authorizer raises an exception
whose message is exactly ``Unauthorized``; any other exception becomes an
authorizer failure (mapped to a 503 by the gateway responses in infra/).
Chalice's local gateway and test client only understand their own exception
classes, which exist where Chalice is installed in full but not in the Lambda
package (it carries only chalice/app.py), so the local class is used when it
can be imported.
"""

from __future__ import annotations

import json

_JSON = {"Content-Type": "application/json"}
# The challenge of every 401, here and in infra/resources.json's UNAUTHORIZED response.
CHALLENGE = 'Basic realm="docdb-rest", charset="UTF-8"'


def unauthorized() -> Exception:
    try:
        from chalice.local import NotAuthorizedError
    except ImportError:
        return Exception("Unauthorized")
    headers = {**_JSON, "WWW-Authenticate": CHALLENGE}
    return NotAuthorizedError(headers, b'{"message":"Unauthorized"}')


def authorizer_unavailable(message: str) -> Exception:
    try:
        from chalice.local import LocalGatewayException
    except ImportError:
        return Exception(message)

    class AuthorizerUnavailable(LocalGatewayException):
        CODE = 503

    body = json.dumps({"message": message}).encode()
    return AuthorizerUnavailable({**_JSON, "Retry-After": "5"}, body)
