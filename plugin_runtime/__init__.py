"""Loading, compiling and running plugins. Knows nothing of Kafka, Faust or the network.

The app hands a `PluginRuntime` the plugin configs of its teams and the backends that
`meta` talks to (`plugin_runtime.backends`); the same runtime backs the embedded mode,
the cluster worker and the authoring kit (`plugin_runtime.testing`).
"""
