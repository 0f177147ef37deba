"""Data: sources (synthetic, folders), targets (the GT rule), tf.data pipelines.

Submodules are imported explicitly (`from keras_skel.data import targets`): `io`, `folders`,
`targets` and `synthetic` work without TensorFlow; `augment`, `pipeline` and `datasets` use it.
"""
