"""Stage after the figures: what the accuracies alone do not show, read from the trained nets themselves.

  activations  a net folder + a probe set of images -> the activations of its 8 weight layers (pycaffe, TEST phase)
  similarity   linear CKA between nets, layer by layer (`xfer similarity`)
  probe        a linear probe per layer on a base net's frozen features for another task (`xfer probe`)
  draw         their figures (a CKA heatmap; probe accuracy beside the trained AnB / AnB+ curves)
"""
