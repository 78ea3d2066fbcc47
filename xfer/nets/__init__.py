"""Stage 4, the nets: the registry (every net and suite as data, one name grammar), the network shapes, rendering
each net's prototxts and links, and the check of the rendered files against Caffe's upgrade of 2014 syntax."""
