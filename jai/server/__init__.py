"""`jai serve`'s HTTP server: the app (app.py), its request schemas (schemas.py), prompts in the training
format (prompts.py), the engine interface (engine.py) and the thread-to-event-loop bridge (stream.py),
text with stop strings (text.py), the outer guard (guard.py), /metrics (metrics.py) and the uvicorn
runner with a shutdown deadline (runner.py). Imports FastAPI; the rest of jai does not (jai/cli/serve.py
imports it when serving).
"""
