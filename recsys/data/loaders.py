def load(path_or_name, **kw):
    raise DataError("loaders not written yet")
from recsys.data.errors import DataError
