"""Calls made at the same instant, as two workers or two beats would make them."""

import threading

from django.db import connection


def at_once(*calls) -> list[Exception]:
    """Run each call in a thread of its own, all released together, each on its own database
    connection; the exceptions they raised."""
    start = threading.Barrier(len(calls))
    errors: list[Exception] = []

    def run(call):
        try:
            start.wait()
            call()
        except Exception as error:  # the caller's assertion shows it
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors
