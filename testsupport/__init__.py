"""What the tests of every app share, in one place: no test module imports another.

- `people`: the password of every test user, users, API clients, the two tenants' people
- `api`: the error format (`assert_error`) and the bad credentials every endpoint refuses
- `endpoints`: every tenant endpoint and the capability it needs (the access matrix's table)
- `dashboard`: a signed-in browser session and the dashboard's URLs
- `documents`: sample texts, uploads through the API, the ready-document helper, the index
- `files`: small PDFs, DOCX, zips and other files built in code
- `llm`: a sample request, provider specs on the wire server, draining a provider's stream
- `widgets`: website-widget visitor sessions, their clients and identity hashes
- `live`: clients of the live ASGI server (WebSocket and HTTP)
- `browser`: Chromium pages signed in to the dashboard
- `environment`: the repository root, services a test needs, commits, waiting, fresh settings
- `wire_server`: a local server speaking the OpenAI, Azure OpenAI and Anthropic wire formats

Fixtures stay in conftest.py files: the root one for what every app uses.
"""
