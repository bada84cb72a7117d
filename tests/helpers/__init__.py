"""What the tests share: the command line in a subprocess (``cli``), basis files (``basis``), synthetic features
(``features``) and graphs (``graphs``), the paper's equations written directly (``reference``), the corpus of real
exports (``corpus``) and a headless browser (``browser``). ``tests/`` is on pytest's path, so a test imports them
as ``from helpers import graphs``."""
