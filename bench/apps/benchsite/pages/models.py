from django.db import models


class Item(models.Model):
    """The `item` table bench/run.py creates (100 rows)."""
    name = models.CharField(max_length=100)
    price = models.DecimalField(max_digits=8, decimal_places=2)

    class Meta:
        db_table = "item"
        managed = False
