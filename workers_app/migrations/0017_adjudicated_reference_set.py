"""The review queue's adjudications recorded before reference sets existed become the set 'adjudicated' (from then
on workers_app.references.adjudicated keeps it current)."""

from django.db import migrations

ADJUDICATED_SET = "adjudicated"


def adjudications_as_a_set(apps, schema_editor):
    ReviewItem = apps.get_model("workers_app", "ReviewItem")
    items = ReviewItem.objects.filter(status="reviewed").exclude(adjudicated={})
    if not items.exists():
        return
    ReferenceSet = apps.get_model("workers_app", "ReferenceSet")
    ReferenceLabel = apps.get_model("workers_app", "ReferenceLabel")
    Domain = apps.get_model("workers_app", "Domain")
    reference_set, _ = ReferenceSet.objects.get_or_create(name=ADJUDICATED_SET, defaults={
        "kind": "adjudicated", "system": True, "created_by": "system", "raters": 1,
        "source": "this console's clinical review queue",
        "description": "The clinical review queue's adjudicated labels, one per reviewed sample and domain; kept "
                       "current by the console as reviewers record them."})
    domains = dict(Domain.objects.values_list("slug", "pk"))
    ReferenceLabel.objects.bulk_create(
        (ReferenceLabel(reference_set=reference_set, sample_id=sample_id, domain_id=domains[slug], labels=codes)
         for sample_id, adjudicated in items.values_list("sample_id", "adjudicated")
         for slug, codes in adjudicated.items() if slug in domains and codes),
        batch_size=2000, ignore_conflicts=True)


class Migration(migrations.Migration):
    dependencies = [("workers_app", "0016_reference_sets")]

    operations = [migrations.RunPython(adjudications_as_a_set, migrations.RunPython.noop)]
