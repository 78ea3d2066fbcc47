"""Progress bars, imported only when one is drawn: tqdm costs ~0.1 s of start-up that most `xfer` verbs never use."""


def tqdm(*args, **kwargs):
    from tqdm import tqdm as bar
    return bar(*args, **kwargs)
