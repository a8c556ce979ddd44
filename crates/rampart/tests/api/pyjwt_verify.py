"""Independent check of a Rampart access token with PyJWT against the server's JWKS.

usage: pyjwt_verify.py TOKEN JWKS_JSON ISSUER AUDIENCE ALG
prints the verified claims as JSON; exits non-zero if verification fails.
"""
import json
import sys

import jwt  # PyJWT

token, jwks, issuer, audience, alg = sys.argv[1:6]
kid = jwt.get_unverified_header(token)["kid"]
keys = {k["kid"]: k for k in json.loads(jwks)["keys"]}
key = jwt.PyJWK(keys[kid]).key
claims = jwt.decode(token, key, algorithms=[alg], audience=audience, issuer=issuer,
                    options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub"]})
print(json.dumps(claims))
