"""The web console at /console: server-rendered pages over the same API the clients use.

A browser signs in with an API key and gets a server-side session (an HttpOnly, SameSite=
Strict cookie); from then on its requests act as that key, on the console's pages and on the
JSON API alike, with the key's scopes. Writes need the session's CSRF token.
"""
