"""When and how model work runs: the scheduler, reuse of suggestions, the model
worker and the loaded engines, and the status they report."""
