"""What a run leaves behind: one sample's result files (``results``), the results folder as a whole
(``run_folder``: every file name, its lock, its config), and the one atomic writer (``files``)."""

from mils.exports import lazy

__getattr__, __dir__, __all__ = lazy(__name__, {  # the public names, by module
    "mils.storage.results": "ResultStore direction finite_or_null result_from_dict without_heavy",
    "mils.storage.run_folder": "MAX_RESULT_BYTES RunFolder ensure_unlocked folder_lock read_result_file seal "
        "sealed trusted_media_root write_media_root",
})
