"""What a run leaves behind: one sample's result files (``results``), the results folder as a whole
(``run_folder``: every file name, its lock, its config), and the one atomic writer (``files``)."""
