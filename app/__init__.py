"""The Faust app, settings, CLI, connections and the pipeline stages."""
