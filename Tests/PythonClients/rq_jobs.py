"""The jobs rq_workload.py enqueues (rq refuses functions of __main__: workers import them by module name)."""


def add(a, b):
    return a + b


def fail(message):
    raise ValueError(message)


def concatenate(*parts):
    return "".join(parts)
