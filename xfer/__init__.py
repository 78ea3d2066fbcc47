"""xfer: a Caffe-faithful reproduction kit for Yosinski et al. (NIPS 2014), "How transferable are features in
deep neural networks?"."""

__version__ = "0.1.0"
