"""The composition root of `make run` (`python -m stack`): the whole system in one process,
built from every layer below it: the dev servers, the worker, the API and the desk."""
