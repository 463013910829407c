"""The pipeline's stages as plain async functions over batches.

Each stage takes the events of one batch and returns a `StageOutput`: the events for the
next stage and the dead letters of the ones it could not process. The Faust agents in
`topologies/` and the embedded driver (`app.embedded`) call the same functions, so every
rule has one implementation.
"""
