"""Writes a synthetic COCO annotation file shaped like instances_train2017.json (118,000 images,
860,000 polygon annotations, ~457 MB) to time the parser:

  .venv/bin/python bench/eval_big_coco_json.py /tmp/big_gt.json
  echo '[]' > /tmp/empty.json
  build/bin/largedet evaluate -a /tmp/big_gt.json -r /tmp/empty.json   # logs "read ... in N s"
"""
import json
import random
import sys


def main():
    random.seed(0)
    n_img, n_ann = 118000, 860000
    images = [{"id": i, "file_name": "%012d.jpg" % i, "width": 640, "height": 480, "license": 1,
               "coco_url": "http://images.cocodataset.org/train2017/%012d.jpg" % i,
               "date_captured": "2013-11-14 11:18:45"} for i in range(1, n_img + 1)]
    anns = []
    for a in range(1, n_ann + 1):
        k = random.randint(6, 40)
        anns.append({"segmentation": [[round(random.uniform(0, 640), 2) for _ in range(2 * k)]],
                     "area": round(random.uniform(10, 1e5), 4), "iscrowd": 0,
                     "image_id": random.randint(1, n_img),
                     "bbox": [round(random.uniform(0, 600), 2) for _ in range(4)],
                     "category_id": random.randint(1, 90), "id": a})
    cats = [{"supercategory": "x", "id": c, "name": "c%d" % c} for c in range(1, 91)]
    with open(sys.argv[1], "w") as f:
        json.dump({"info": {}, "licenses": [], "images": images, "annotations": anns,
                   "categories": cats}, f)


if __name__ == "__main__":
    main()
