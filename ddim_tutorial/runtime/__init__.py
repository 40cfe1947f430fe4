"""How the core runs on each Keras backend: backend choice, compiled sampling, random numbers per
step and per replica, the JAX EMA state, data-parallel devices, arrays to NumPy."""
