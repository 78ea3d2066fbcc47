"""Stage 1-3, the data: ImageNet (or any class/xxx.jpg tree) -> whole lists -> the paper's split lists -> databases
(LMDB/LevelDB) and mean files, or one shared image tree. Fashion-MNIST as an image tree for the demo."""
