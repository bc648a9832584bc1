"""The dr-platform bootstrap stack: state backend, drctl control store, secrets keys, CI and operator roles."""
